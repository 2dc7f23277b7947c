#!/bin/sh
# `npm run setup`: installs the operating-system packages Xenos needs on this machine, when they are missing,
# and checks that the domain sandbox works. Idempotent: a second run installs nothing. The installing is
# scripts/install-packages.sh's: apt-get as root, or through sudo; when neither works it says what to run
# instead and exits 1.
#
# What and why (one line each; later drivers add their packages here):
#   bwrap     bubblewrap: the sandbox every process-driver domain runs in (src/drivers/sandbox/)
#   setpriv   util-linux: drops to the domain's own uid before the sandbox starts (when xenosd is root)
#   nsenter   util-linux: runs exec health checks inside a domain's sandbox
#   ip        iproute2: the network-namespace tests
#   curl      curl: the README's examples
#   git       git: a --watch directory's revision is its git HEAD (and the GitOps tests make repositories)
#   qemu-img  qemu-utils: copy-on-write qcow2 disks over a template's disk image (src/drivers/qcow2-overlay.ts)
#   mkfs.xfs  xfsprogs: the reflink test (a loop-mounted XFS, test/drivers/copy-on-write.test.ts)
#   qemu-system-x86_64  qemu-system-x86: the QEMU driver's guests (TCG where KVM is not usable)
#   cpio, mke2fs, xz    cpio, e2fsprogs, xz-utils: npm run guest-image (the demo guest, scripts/guest-image/),
#                       which also installs them itself when they are missing
set -eu

NEEDED="bwrap:bubblewrap setpriv:util-linux nsenter:util-linux ip:iproute2 curl:curl git:git qemu-img:qemu-utils mkfs.xfs:xfsprogs
qemu-system-x86_64:qemu-system-x86 cpio:cpio mke2fs:e2fsprogs xz:xz-utils"

# shellcheck disable=SC2086
sh "$(dirname "$0")/install-packages.sh" $NEEDED
echo "setup: the packages Xenos needs are installed"

# Check that a domain sandbox can be made here, the way xenosd makes it: as root, bwrap makes the namespaces
# and the command becomes an unprivileged uid (nobody here); otherwise bwrap makes a user namespace.
probe_out=$(mktemp)
if [ "$(id -u)" = 0 ]; then
  set -- bwrap --unshare-pid --unshare-ipc --unshare-uts --die-with-parent --new-session \
    --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 \
    --proc /proc --dev /dev -- setpriv --reuid=65534 --regid=65534 --clear-groups --no-new-privs -- /bin/true
else
  set -- bwrap --unshare-user --disable-userns --unshare-pid --die-with-parent --new-session \
    --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 \
    --proc /proc --dev /dev -- /bin/true
fi
if "$@" 2>"$probe_out"; then
  echo "setup: the domain sandbox works ($(bwrap --version))"
  rm -f "$probe_out"
else
  echo "setup: bubblewrap is installed but cannot make a sandbox here: $(cat "$probe_out")" >&2
  rm -f "$probe_out"
  if [ "$(id -u)" != 0 ]; then
    echo "setup: without root it needs unprivileged user namespaces: check sysctl user.max_user_namespaces" >&2
    echo "setup: (must be > 0), kernel.unprivileged_userns_clone=1 where it exists, and AppArmor's userns rules." >&2
  fi
  echo "setup: Without a sandbox, domains do not start (xenosd --unsafe-no-sandbox runs them unsandboxed)." >&2
  exit 1
fi

# Domains see the host's /usr, /bin and /lib read-only and get the system PATH: the example web service
# and the tests run `node` from there (any version from 18 on does).
if ! PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin command -v node >/dev/null 2>&1; then
  echo "setup: note: no node in /usr/bin or /usr/local/bin: templates that run node (manifests/web, the tests)" >&2
  echo "setup: need one there (apt-get install nodejs), or its directory given with xenosd --domain-ro-path." >&2
fi
