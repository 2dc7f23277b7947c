#!/bin/sh
# PID 1 of the test Xen host's dom0 (scripts/xen/xen-host.ts; no systemd, no udev): brings up what Debian's
# xen init scripts would (the Xen device files, oxenstored, xen-init-dom0, xenconsoled), then mounts the
# test's disk (/dev/vdb) at /test and runs /test/run.sh. Everything worth reading is a line
# `XENOS-TEST: ...` on the console; the end is `XENOS-TEST: EXIT <status>`, and QEMU exits with
# (status << 1) | 1 through its isa-debug-exit port.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
XENBIN=/usr/lib/xen-4.17/bin
STATUS=0

say() { echo "XENOS-TEST: $*"; }
finish() {
  say "EXIT $STATUS"
  sync
  printf "\\$(printf %o "$STATUS")" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null # isa-debug-exit, 0xf4
  sleep 1
  busybox poweroff -f
  sleep 30
}
die() { STATUS=1; say "FAIL $*"; finish; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /dev/pts /dev/shm /run/lock /run/xen /run/xenstored
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
# What udev would make: without /dev/fd xl's block hotplug script loops forever.
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
hostname xenhost
ip link set lo up

modprobe -a xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs xen-blkback xen-netback bridge loop tun ||
  die "modprobe of the Xen modules failed"
mount -t xenfs xenfs /proc/xen || die "cannot mount xenfs"
grep -q control_d /proc/xen/capabilities || die "not Xen's control domain"
XENSTORED_ROOTDIR=/run/xenstored $XENBIN/oxenstored --pid-file /run/xen/xenstored.pid || die "oxenstored did not start"
i=0
until [ -f /run/xen/xenstored.pid ]; do
  i=$((i + 1)); [ $i -gt 100 ] && die "oxenstored wrote no pid file"
  sleep 0.1
done
$XENBIN/xen-init-dom0 > /tmp/xen-init-dom0.log 2>&1 || die "xen-init-dom0: $(cat /tmp/xen-init-dom0.log)"
$XENBIN/xenconsoled --pid-file=/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console ||
  die "xenconsoled did not start"
say "toolstack up"

# A directory the host shares over 9p (tag `xenos`, read-only): the repository, for a test that runs Xenos.
# It appears at /xenos writable, the writes kept in dom0's memory (overlayfs): tools write caches beside
# their code, and the host's copy must not change.
if modprobe -a 9p 9pnet_virtio overlay && grep -qs xenos /sys/bus/virtio/drivers/9pnet_virtio/*/mount_tag; then
  mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 xenos /xenos-share ||
    die "cannot mount the 9p share xenos"
  mkdir -p /run/xenos-upper /run/xenos-work
  mount -t overlay overlay -o lowerdir=/xenos-share,upperdir=/run/xenos-upper,workdir=/run/xenos-work /xenos ||
    die "cannot lay a writable overlay on the share"
fi

mount -t ext4 /dev/vdb /test || die "no test disk /dev/vdb"
[ -x /test/run.sh ] || die "the test disk has no run.sh"
/test/run.sh 2>&1
STATUS=$?
finish
