"""``micromance web``: the unit's own web page, for a phone on the home network.

A separate process from the daemon (``run``): it reads the store read-only, edits the config
file, and asks the daemon for everything else through the control socket
(``micromance.control``), so there is never a second MQTT client with the unit's identity.
Under systemd it is socket-activated and exits when nobody has looked for 10 minutes.

- ``network``:       who may connect at all (private addresses only)
- ``web_state``:     ``web.json``: sessions, access codes, the lockout (hashes only)
- ``auth``:          access codes, sessions, CSRF and origin checks on top of it
- ``site``:          what every page shares: the config now, rendering, the notes
- ``unit``:          what the pages show, from the daemon or read from the store
- ``settings_file``: config edits that keep the file's comments, validated before written
- ``history_svg``:   the History page's bar chart, drawn on the server
- ``checks``:        doctor's checks, run in a short-lived child process
- ``app``:           the checks every request passes, sign-in; ``pages/`` the other routes,
                     ``templates/`` and ``static/`` what they send
- ``server``:        waitress on a port or on the socket systemd hands over; the idle exit
- ``cli``:           ``micromance web [--port N] | --pin``
"""
