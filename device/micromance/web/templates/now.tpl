% rebase('base.tpl', title='Now')
% if not running:
<p class="problem" id="not-running">The unit is not running{{': ' + problem if problem else ''}}. The page shows what it last saved; sending needs the unit.</p>
% end
% if gesture:
<p class="muted">Today's gesture{{' · ' + practice if practice else ''}}</p>
<p class="gesture" id="gesture">{{gesture}}</p>
% end
<form method="post" action="/thanks">
<input type="hidden" name="csrf" value="{{csrf}}">
<button id="send-thanks">Send thanks</button>
</form>
<dl class="facts">
<dt>Partner</dt><dd id="partner">{{partner}}</dd>
<dt>Today</dt><dd id="today">{{status['today']}} thank-you{{'' if status['today'] == 1 else 's'}} both ways</dd>
<dt>In all</dt><dd id="totals">{{status['sent_total']}} sent, {{status['received_total']}} received</dd>
<dt>Waiting</dt><dd id="pending">{{status['pending']}} thank-you{{'' if status['pending'] == 1 else 's'}} from your partner not seen yet</dd>
% if status['outbox']:
<dt>On the way</dt><dd id="outbox">{{status['outbox']}} waiting for the partner's unit</dd>
% end
</dl>
