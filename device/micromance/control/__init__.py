"""The control socket: how other processes on the unit (the CLI, the web page) ask the
running daemon to do something, so there is never a second MQTT client with its identity.

A Unix stream socket, ``control.sock``, in the daemon's runtime directory
(``$RUNTIME_DIRECTORY`` under systemd, else the state directory), mode 0660, group
``micromance`` when that group exists. One JSON object per line each way: a request
``{"op": ..., ...}``, then its answer ``{"ok": true, ...}`` or
``{"ok": false, "error": "...", "fix": "..."}``. A connection may carry several requests in
turn. The operations (``client.ControlClient`` has one method each):

====================  ===========================================  ==========================
op                    arguments                                    answer (besides ``ok``)
====================  ===========================================  ==========================
``status``                                                         ``status``: the live facts
                                                                   and the screen (see
                                                                   ``server``)
``press``             ``button``: ``thanks``, ``next`` or ``done``
``pair``              ``mode``: ``room`` (``room``: a name, ""     ``invite``: the code (mode
                      for the config's), ``invite``, or ``join``   ``invite``), else ""
                      (``code``: the invite code)
``pairing``                                                        ``pairing``: ``phase``,
                                                                   ``code``, ``detail``
``confirm``, ``cancel``                                            (the 6-digit comparison;
                                                                   ``cancel``: ``cancelled``,
                                                                   false if none was under
                                                                   way)
``forget``                                                         ``was_paired``, ``told``
                                                                   (the partner was told)
``reload``                                                         ``applied``: what changed;
                                                                   or an error, and the unit
                                                                   keeps its old config
``show_code``         ``code``: 6 digits, ``seconds``: 1-600       (the web page's access
                                                                   code, on the screen)
``hide_code``
====================  ===========================================  ==========================

The ``status`` answer's object has these keys: ``name``, ``paired`` (bool), ``link``
(``connected``/``connecting``/``offline``), ``partner`` (``online``/``offline``/``unknown``),
``partner_name``, ``away_since`` (ISO time the partner went away, or null), ``prompt``
(``{"id", "text", "practice"}``: today's gesture as the screen shows it), ``today``,
``sent_total``, ``received_total``, ``pending`` (thank-yous waiting to be seen), ``streak``,
``together_total``, ``outbox``, ``quiet`` (bool: quiet hours now), ``screen`` (the screen's
mode, lower case), ``pairing`` (as the ``pairing`` op), ``brokers`` (as ``status --json``)
and ``config_error`` ("" when the config in use is the file's; else why the last reload was
refused). Besides these: ``pair_id`` (8 hex characters, "" unpaired), ``storage`` ("" while
saving works, else why it fails) and ``history`` (``[ISO date, sent, received, done]`` per day,
the last 30 days, oldest first, days with nothing left out).

An error answer may also carry ``key``: the config key at fault (a refused ``reload``).

``pairing.phase`` is one of ``idle``, ``searching``, ``code`` (compare it: ``code`` is set),
``waiting`` (we confirmed, the partner not yet), ``paired``, ``failed``, ``cancelled``,
``timed_out``, ``interfered``; ``detail`` says more in a few words.
"""

CONTROL_SOCKET = "control.sock"
