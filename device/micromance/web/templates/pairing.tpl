% rebase('base.tpl', title='Pairing')
% if active:
<noscript><p class="muted">Reload this page to follow the pairing.</p></noscript>
% end
% if problem:
<p class="problem" id="pairing-problem">{{problem}}</p>
% end
% if unreachable:
<p class="problem" id="not-running">The unit is {{'not running' if unreachable == 'not running' else 'not answering: ' + unreachable}}: pairing needs it.</p>
% end
<p id="pairing-phase" data-phase="{{phase}}" class="muted">{{state.get('detail') or ''}}</p>
% if phase == 'code':
<p>Do both units show this number?</p>
<p class="big" id="comparison-code">{{state.get('code', '')}}</p>
<div class="row">
<form method="post" action="/pairing/confirm"><input type="hidden" name="csrf" value="{{csrf}}"><button class="primary" id="pair-confirm">Yes, the same: confirm</button></form>
<form method="post" action="/pairing/cancel"><input type="hidden" name="csrf" value="{{csrf}}"><button id="pair-cancel">No: cancel</button></form>
</div>
% elif phase in ('searching', 'waiting'):
%   if invite:
<p>Tell the other home this invite code (it works for two minutes):</p>
<p class="big" id="invite-code">{{invite}}</p>
%   end
<p>{{'Waiting for the other unit…' if phase == 'searching' else 'Confirmed here; waiting for the other unit to confirm…'}}</p>
<form method="post" action="/pairing/cancel"><input type="hidden" name="csrf" value="{{csrf}}"><button id="pair-cancel">Cancel</button></form>
% elif status.get('paired'):
<p id="paired">Paired{{' with ' + status['partner_name'] if status.get('partner_name') else ''}}.</p>
%   if ask_forget:
<p class="problem">Forget the pair? Both units stop sending to each other, and a new pair counts from zero.</p>
<div class="row">
<form method="post" action="/pairing/forget"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="confirm" value="yes"><button class="danger" id="forget-confirm">Yes, forget it</button></form>
<a href="/pairing" id="forget-keep">No, keep it</a>
</div>
%   else:
<form method="post" action="/pairing/forget"><input type="hidden" name="csrf" value="{{csrf}}"><button class="danger" id="forget">Forget the pair…</button></form>
%   end
% else:
%   if phase in ('failed', 'cancelled', 'timed_out', 'interfered'):
<p class="problem" id="pairing-outcome">Not paired: {{state.get('detail') or phase.replace('_', ' ')}}.</p>
%   end
<h2>Invite</h2>
<p>On one unit: make an invite code and tell it to the other home.</p>
<form method="post" action="/pairing/invite"><input type="hidden" name="csrf" value="{{csrf}}"><button class="primary" id="pair-invite">Make an invite code</button></form>
<h2>Join</h2>
<p>On the other unit: type the code you were told.</p>
<form method="post" action="/pairing/join" class="stack"><input type="hidden" name="csrf" value="{{csrf}}">
<label for="join-code">Invite code</label>
<input id="join-code" name="code" autocapitalize="off" autocomplete="off" spellcheck="false" placeholder="417 maple river candle otter">
<button class="primary" id="pair-join">Join</button>
</form>
% end
