% rebase('base.tpl', title='History')
<h2>Thank-yous, last 30 days</h2>
<p class="legend">
% for css, name in legend:
<span class="swatch {{css}}"></span>{{name}}
% end
</p>
{{!thanks_chart}}
<dl class="facts">
% if sent is not None:
<dt>Sent</dt><dd id="history-sent">{{sent}}</dd>
<dt>Received</dt><dd id="history-received">{{received}}</dd>
% else:
<dt>Both ways</dt><dd id="history-both">{{both}}</dd>
% end
<dt>Streak</dt><dd id="streak">{{streak}} day{{'' if streak == 1 else 's'}} in a row with a gesture done</dd>
<dt>Gestures done</dt><dd id="history-done">{{done_total}} in 30 days</dd>
</dl>
% if done_chart:
<h2>Gestures done</h2>
{{!done_chart}}
% end
