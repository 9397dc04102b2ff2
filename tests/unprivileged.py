"""Running a command as an unprivileged user. The tests run as root (CI does), who reads and writes anything, so a
test of permissions runs its subject as nobody through ``setpriv``."""

from __future__ import annotations

NOBODY_UID = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY_UID}", f"--regid={NOBODY_UID}", "--clear-groups"]
