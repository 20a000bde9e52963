% rebase('base.tpl', title='Connection')
% include('saved.tpl')
% for key, message in errors.items():
%   beside_a_field = key == 'broker' or (key.startswith('broker.') and key.split('.')[1].isdigit())
%   if key and not beside_a_field:
<p class="problem" id="error-{{key}}">{{message}}</p>
%   end
% end
<h2>In use</h2>
<p class="muted">Every message is sealed on the unit: a broker passes it on without being able to read it. The unit uses all of these at once.</p>
<ul class="lines" id="brokers-in-use">
% for number, broker in enumerate(in_use, 1):
<li id="broker-{{number}}">
<strong>{{broker['host']}}:{{broker['port']}}</strong>
% if not running:
<span class="muted">(the unit is not running)</span>
% elif broker.get('connected'):
<span class="pass">connected</span>
% else:
<span class="fail">not connected{{': ' + broker['error'] if broker.get('error') else ''}}</span>
% end
<form method="post" action="/connection/test" class="row">
<input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="broker" value="{{number}}">
<button id="test-broker-{{number}}">Test</button>
</form>
% if tested and tested[0] == number:
<p class="{{tested[1][0]}}" id="test-result">{{tested[1][1]}}</p>
% end
</li>
% end
</ul>
% if tested and not 1 <= tested[0] <= len(in_use):
<p class="fail" id="test-result">{{tested[1][1]}}</p>
% end

<h2>Which brokers</h2>
<form method="post" action="/connection" id="brokers-form">
<input type="hidden" name="csrf" value="{{csrf}}">
<input type="hidden" name="broker_rows" value="{{len(rows) + 1}}">
<div class="row"><input type="radio" id="public-on" name="public_brokers" value="on"{{!' checked' if public else ''}}><label class="inline" for="public-on">The free public brokers shipped with the unit ({{', '.join(b.host for b in public_brokers)}})</label></div>
<div class="row"><input type="radio" id="public-off" name="public_brokers" value="off"{{!'' if public else ' checked'}}><label class="inline" for="public-off">My own brokers, below</label></div>
% if errors.get('broker'):
<p class="error" id="error-broker">{{errors['broker']}}</p>
% end
% for number, row in enumerate(rows + [None], 1):
%   field = 'broker.%d' % number
<fieldset id="{{field}}"><legend>{{'Broker %d' % number if row else 'Add a broker'}}</legend>
<label for="{{field}}.host">Host</label>
<input id="{{field}}.host" name="{{field}}.host" value="{{row.host if row else ''}}" autocapitalize="off" spellcheck="false">
% include('field_error.tpl', key=field + '.host')
<label for="{{field}}.port">Port</label>
<input id="{{field}}.port" name="{{field}}.port" inputmode="numeric" value="{{row.port if row else 8883}}">
% include('field_error.tpl', key=field + '.port')
<div class="row"><input type="checkbox" id="{{field}}.tls" name="{{field}}.tls" value="true"{{!' checked' if (row.tls if row else True) else ''}}><label class="inline" for="{{field}}.tls">TLS</label></div>
<label for="{{field}}.username">User name (empty: none)</label>
<input id="{{field}}.username" name="{{field}}.username" value="{{row.username if row else ''}}" autocapitalize="off" autocomplete="off">
<label for="{{field}}.password">Password {{'(set; empty keeps it)' if row and row.password_file else '(empty: none)'}}</label>
<input id="{{field}}.password" name="{{field}}.password" type="password" value="" autocomplete="new-password">
% if row:
<div class="row"><input type="checkbox" id="{{field}}.remove" name="{{field}}.remove" value="true"><label class="inline" for="{{field}}.remove">Remove this broker</label></div>
% end
</fieldset>
% end
<button class="primary" id="save-brokers">Save</button>
</form>
