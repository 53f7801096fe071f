"""Command handlers, one module per area; felboot.cli parses arguments and dispatches here.

Each handler takes the parsed arguments and returns an exit code. Heavy modules
(pyusb, unicorn, tqdm, construct users) are imported inside the handlers so
that `felboot --help` stays fast.
"""
