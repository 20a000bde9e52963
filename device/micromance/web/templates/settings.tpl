% rebase('base.tpl', title='Settings')
% include('saved.tpl')
% shown_keys = ('device.name', 'quiet_hours.enabled', 'quiet_hours.start', 'quiet_hours.end', 'prompts.interval_minutes', 'prompts.disabled_practices', 'display.contrast', 'display.dim_contrast', 'display.dim_after_minutes', '')
% for key, message in errors.items():
%   if key not in shown_keys and not key.startswith('prompts.extra'):
<p class="problem" id="error-{{key}}">{{message}}</p>
%   end
% end
<form method="post" action="/settings" id="settings-form">
<input type="hidden" name="csrf" value="{{csrf}}">
<label for="device.name">Name on the partner's screen</label>
<input id="device.name" name="device.name" value="{{values['device.name']}}" maxlength="32" required>
% include('field_error.tpl', key='device.name')

<fieldset><legend>Quiet hours</legend>
<p class="muted">No light and a dark screen; thank-yous wait until the morning.</p>
<div class="row"><input type="checkbox" id="quiet_hours.enabled" name="quiet_hours.enabled" value="true"{{!' checked' if values['quiet_hours.enabled'] else ''}}><label class="inline" for="quiet_hours.enabled">On</label></div>
% include('field_error.tpl', key='quiet_hours.enabled')
<div class="row">
<label for="quiet_hours.start">From</label><input id="quiet_hours.start" name="quiet_hours.start" type="time" value="{{values['quiet_hours.start']}}">
<label for="quiet_hours.end">to</label><input id="quiet_hours.end" name="quiet_hours.end" type="time" value="{{values['quiet_hours.end']}}">
</div>
% include('field_error.tpl', key='quiet_hours.start')
% include('field_error.tpl', key='quiet_hours.end')
</fieldset>

<fieldset><legend>Gestures</legend>
<label for="prompts.interval_minutes">A new gesture every (minutes)</label>
<input id="prompts.interval_minutes" name="prompts.interval_minutes" inputmode="numeric" value="{{values['prompts.interval_minutes']}}">
% include('field_error.tpl', key='prompts.interval_minutes')
<p>Practices</p>
% for key, label in practices:
<div class="row"><input type="checkbox" id="practice-{{key}}" name="practice" value="{{key}}"{{!'' if key in values['prompts.disabled_practices'] else ' checked'}}><label class="inline" for="practice-{{key}}">{{label}}</label></div>
% end
% include('field_error.tpl', key='prompts.disabled_practices')
</fieldset>

<fieldset><legend>Display</legend>
<label for="display.contrast">Brightness (1-255)</label>
<input id="display.contrast" name="display.contrast" inputmode="numeric" value="{{values['display.contrast']}}">
% include('field_error.tpl', key='display.contrast')
<label for="display.dim_contrast">Dimmed brightness (0-255)</label>
<input id="display.dim_contrast" name="display.dim_contrast" inputmode="numeric" value="{{values['display.dim_contrast']}}">
% include('field_error.tpl', key='display.dim_contrast')
<label for="display.dim_after_minutes">Dim after (minutes without a press)</label>
<input id="display.dim_after_minutes" name="display.dim_after_minutes" inputmode="numeric" value="{{values['display.dim_after_minutes']}}">
% include('field_error.tpl', key='display.dim_after_minutes')
</fieldset>
<button class="primary" id="save-settings">Save</button>
<p class="muted">Saved to {{config_path}}; the old file is kept beside it.</p>
</form>

<h2>Your own gestures</h2>
<form method="post" action="/settings/prompts">
<input type="hidden" name="csrf" value="{{csrf}}">
<p class="muted">A prompts file in TOML ({{prompts_path}}), one [[prompt]] per gesture.</p>
% for key, message in errors.items():
%   if key.startswith('prompts.extra'):
<p class="error" id="error-{{key}}">{{message}}</p>
%   end
% end
<textarea id="prompts_text" name="prompts_text" spellcheck="false">{{prompts_text}}</textarea>
<button class="primary" id="save-prompts">Save gestures</button>
</form>
