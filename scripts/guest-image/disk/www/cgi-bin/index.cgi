#!/bin/sh
# GET /: one line `boot=<boot id> count=<n>`, n the number of GET / answered since boot (this one included).
# The count lives in guest memory (/run is tmpfs); a mkdir lock makes concurrent requests count one by one.
# Each request is also appended to /data/requests.log, so the guest keeps writing to its disk.
lock=/run/xenos/count.lock
tries=0
until mkdir "$lock" 2>/dev/null; do
  tries=$((tries + 1))
  # A holder that died without unlocking (it holds the lock for microseconds): take the lock over.
  [ $tries -gt 10000 ] && { rmdir "$lock" 2>/dev/null; tries=0; }
  usleep 500
done
trap 'rmdir "$lock" 2>/dev/null' EXIT HUP INT TERM PIPE
n=$(($(cat /run/xenos/count) + 1))
echo "$n" > /run/xenos/count
rmdir "$lock"
trap - EXIT HUP INT TERM PIPE
boot=$(cat /run/xenos/boot_id)
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $REMOTE_ADDR boot=$boot count=$n" >> /data/requests.log
printf 'Content-Type: text/plain\r\n\r\nboot=%s count=%s\n' "$boot" "$n"
