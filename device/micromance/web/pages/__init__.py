"""The pages, one module each; ``routes(app, site)`` adds a module's routes to the app.

- ``now``:        Now (the big "Send thanks") and History
- ``settings``:   name, quiet hours, gestures, practices, own prompts, display
- ``connection``: the brokers, public or one's own, each with a test
- ``pairing``:    invite, join, compare, forget
- ``check``:      doctor's report
- ``saving``:     the save-check-reload step Settings and Connection share
"""
