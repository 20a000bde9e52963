% if key in errors:
<p class="error" id="error-{{key}}">{{errors[key]}}</p>
% end
