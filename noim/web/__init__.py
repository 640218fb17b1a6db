"""noim's web application: the multi-user interface (Starlette, Jinja2 pages on the server).

``noim serve`` runs ``create_app`` under uvicorn. Routes are thin: parse the form, call one
service, render the view. See docs/web.md and docs/security.md.
"""
