#!/bin/busybox sh
# PID 1 of the SCTP lab VM (packed into its initramfs by tests/vm/image.py).
#
# Loads the kernel modules listed in /modules.list, mounts the host's root
# (virtio-9p, read-only) under a tmpfs overlay at /newroot, mounts the lab's
# result share at /newroot/lab/out, runs /lab/out/.lab/job.sh chrooted into the
# overlay, records its exit status and powers off. PID 1 stays in the
# initramfs, so busybox is always at hand to reap orphans and to power off.
export PATH=/bin

say() { echo "lab-init: $*"; }
halt() {
    sync
    echo 0 >/proc/sys/kernel/printk  # no "reboot: Restarting system" line
    # QEMU runs with -no-reboot, so a reboot ends it.
    reboot -f
    sleep 5
}
fail() { say "FAILED: $*"; halt; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

while read -r module; do
    insmod "/lib/modules/$module.ko" || fail "cannot load kernel module $module"
done </modules.list

# msize: larger 9p messages mean fewer round trips; cache=loose: the host root
# does not change under a running lab (build first), so cache lookups and pages.
NINEP=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o "$NINEP,ro,cache=loose" hostroot /lower || fail "cannot mount the host root (9p)"
mount -t tmpfs -o mode=0755 tmpfs /upper
mkdir -p /upper/data /upper/work
mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work overlay /newroot \
    || fail "cannot mount the overlay root"

R=/newroot
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts $R/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $R/dev/shm
mount -t tmpfs -o mode=1777 tmpfs $R/tmp
mount -t tmpfs -o mode=0755 tmpfs $R/run
mkdir -p $R/lab/out $R/run/netns
mount -t 9p -o "$NINEP" labout $R/lab/out || fail "cannot mount the result share (9p)"
cp /bin/busybox $R/lab/busybox

# The fresh /tmp and /run above hide the host's: a working directory there (a clone
# in /tmp) comes back as its own overlay over the host's copy.
if [ -f $R/lab/out/.lab/workdir ]; then
    read -r W <$R/lab/out/.lab/workdir
    [ -d "/lower$W" ] || fail "no working directory $W on the host"
    mkdir -p /wupper && mount -t tmpfs -o mode=0755 tmpfs /wupper
    mkdir -p /wupper/data /wupper/work "$R$W"
    mount -t overlay -o "lowerdir=/lower$W,upperdir=/wupper/data,workdir=/wupper/work" \
        overlay "$R$W" || fail "cannot mount the working directory $W"
fi

hostname sctp-lab
ip link set lo up

[ -f $R/lab/out/.lab/job.sh ] || fail "no job script in the result share"
read -r uptime _rest </proc/uptime
say "running the command (booted in ${uptime} s)"
chroot $R /lab/busybox sh /lab/out/.lab/job.sh
status=$?
echo "$status" >$R/lab/out/.lab/status
sync
umount $R/lab/out
halt
