# /etc/unitcorn/demo.conf.py: the config of site "demo" (unit unitcorn@demo.service).
#
# Each site is one file, /etc/unitcorn/SITE.conf.py, read by unitcorn@SITE.service. It is Python;
# its module-level names that are setting names are taken (gunicorn's names: a gunicorn.conf.py
# works here). Every setting: man unitcorn, or `unitcorn --print-config -c THIS_FILE`.
# The service runs as a dynamic user that can read, but not write, this file: keep secrets in
# /etc/unitcorn/SITE.env (KEY=value lines, mode 0600; systemd reads it as root and passes them
# to the app as environment variables).
#
# Try it:  systemctl enable --now unitcorn@demo.socket
#          curl --unix-socket /run/unitcorn/demo.sock http://localhost/

# The application, MODULE:CALLABLE; unitcorn.demo:app is the built-in hello-world.
wsgi_app = "unitcorn.demo:app"

# Where your application's code lives, if it is not an installed package.
# pythonpath = "/srv/demo"
# chdir = "/srv/demo"

# No `bind`: unitcorn serves exactly the sockets systemd passes (unitcorn@demo.socket listens on
# /run/unitcorn/demo.sock). To run the service without its .socket unit, name the addresses:
# bind = ["127.0.0.1:8000"]

workers = 2
# Seconds a worker may stay silent before it is replaced, and that a stop or reload lets
# requests in flight finish (the unit's TimeoutStopSec=45s leaves room for 30).
timeout = 30
graceful_timeout = 30

# Logs go to the journal: journalctl -u unitcorn@demo
loglevel = "info"
# accesslog = "-"
