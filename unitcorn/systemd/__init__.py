"""The systemd service contract: socket activation, sd_notify, journald. Imports nothing else
from unitcorn, so it can be read, tested and reused on its own."""
