% if saved.note:
<p class="note" id="saved">{{saved.note}}</p>
% end
% if saved.applied:
<ul id="applied">
% for change in saved.applied:
<li>{{change}}</li>
% end
</ul>
% end
% if saved.problem:
<p class="problem" id="unit-problem">{{saved.problem}}</p>
% end
% if errors.get(''):
<p class="problem" id="error-file">{{errors['']}}</p>
% end
