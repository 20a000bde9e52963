<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}} · {{unit_name}}</title>
<link rel="stylesheet" href="/static/style.css">
% for script in get('scripts', ()):
<script src="/static/{{script}}" defer></script>
% end
</head>
<body>
<header>
<span class="unit">{{unit_name}}</span>
% if get('signed_in', True):
<nav>
% for href, label, ident in navigation:
<a href="{{href}}" id="{{ident}}"{{!' aria-current="page"' if href == path else ''}}>{{label}}</a>
% end
</nav>
% end
</header>
<main>
<h1>{{title}}</h1>
% if config_problem:
<p class="problem" id="config-problem">The config file is not valid, so the page uses the last good one: {{config_problem}}</p>
% end
% if note:
<p class="note" id="message">{{note}}</p>
% end
{{!base}}
</main>
% if get('signed_in', True):
<footer>
<form method="post" action="/logout"><input type="hidden" name="csrf" value="{{csrf}}"><button id="sign-out" class="link">Sign out</button></form>
<form method="post" action="/logout/all"><input type="hidden" name="csrf" value="{{csrf}}"><button id="sign-out-all" class="link">Sign out every browser</button></form>
</footer>
% end
</body>
</html>
