"""Runs a command in a umockdev test bed and adds/removes devices while it runs.

Usage (under umockdev-wrapper, so that this process and the command get the
preload library): umockdev-hotplug.py [DEVICE_FILE...] -- COMMAND [ARGS...]

The command inherits stdout/stderr. Requests arrive as JSON lines on stdin:
  {"op": "add", "device": "<umockdev text of one device>"}
  {"op": "remove", "syspath": "/sys/devices/..."}
Replies and events go as JSON lines to fd 3:
  {"event": "started", "pid": N, "root": DIR}
  {"ok": true, "op": "add", "syspath": S} / {"ok": false, "error": MSG}
  {"event": "exited", "code": N}
SIGTERM or the end of stdin terminates the command; the test bed is removed
and this process exits with the command's exit status.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading

import gi

gi.require_version('UMockdev', '1.0')
from gi.repository import UMockdev  # noqa: E402

ctl = os.fdopen(3, 'w', buffering=1)
ctl_lock = threading.Lock()


def reply(obj):
    # The test process may be gone (broken pipe); shutting down must still work.
    try:
        with ctl_lock:
            ctl.write(json.dumps(obj) + '\n')
    except OSError:
        pass


def syspath_of(text):
    for line in text.splitlines():
        if line.startswith('P:'):
            return '/sys' + line[2:].strip()
    raise ValueError('device text has no "P:" line')


testbed = UMockdev.Testbed.new()
root = testbed.get_root_dir()
sep = sys.argv.index('--')
for path in sys.argv[1:sep]:
    testbed.add_from_file(path)

# The command inherits UMOCKDEV_DIR (set by Testbed.new) and LD_PRELOAD.
child = subprocess.Popen(sys.argv[sep + 1:], stdin=subprocess.DEVNULL)
signal.signal(signal.SIGTERM, lambda *_: child.terminate())


def watch_child():
    code = child.wait()
    try:
        reply({'event': 'exited', 'code': code})
        shutil.rmtree(root, ignore_errors=True)
    finally:
        os._exit(code if code >= 0 else 128 - code)


threading.Thread(target=watch_child, daemon=True).start()
reply({'event': 'started', 'pid': child.pid, 'root': root})

for line in sys.stdin:
    try:
        req = json.loads(line)
        if req['op'] == 'add':
            syspath = syspath_of(req['device'])
            testbed.add_from_string(req['device'])
            testbed.uevent(syspath, 'add')
            reply({'ok': True, 'op': 'add', 'syspath': syspath})
        elif req['op'] == 'remove':
            # The uevent first: it carries the device's properties, which removal deletes.
            testbed.uevent(req['syspath'], 'remove')
            testbed.remove_device(req['syspath'])
            reply({'ok': True, 'op': 'remove', 'syspath': req['syspath']})
        else:
            reply({'ok': False, 'error': 'unknown op %r' % req['op']})
    except Exception as err:  # report, keep serving
        reply({'ok': False, 'error': str(err)})

child.terminate()
threading.Event().wait()  # watch_child exits the process
