% rebase('base.tpl', title='Sign in', signed_in=False)
<p>This page belongs to the unit on your counter. To use it from this browser, show a code on
the unit's screen and type it here. You do this once per browser.</p>
% if problem:
<p class="problem" id="login-problem">{{problem}}</p>
% end
<form method="post" action="/login/code">
<input type="hidden" name="csrf" value="{{csrf}}">
<button id="show-code"{{!' disabled' if locked else ''}}>Show a code on the unit</button>
</form>
<form method="post" action="/login" class="stack">
<input type="hidden" name="csrf" value="{{csrf}}">
<label for="code">Code</label>
<input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]*" maxlength="7" required>
<button id="sign-in"{{!' disabled' if locked else ''}}>Sign in</button>
</form>
