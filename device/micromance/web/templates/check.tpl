% rebase('base.tpl', title='Check')
<p class="muted">What the unit needs, checked now, one line each{{': all fine' if not failures else ''}}.</p>
<ul class="lines" id="check-lines">
% for number, line in enumerate(lines, 1):
<li id="check-{{line['name'].replace(' ', '-')}}" class="check">
<span class="{{line['outcome']}}">{{line['symbol']}}</span>
<strong>{{line['name']}}</strong>: {{line['message']}}
% if line['fix']:
<br><span class="muted">Fix: {{line['fix']}}</span>
% end
</li>
% end
</ul>
<form method="get" action="/check"><button id="check-again">Check again</button></form>
