#!/bin/sh
# GET /: one line `boot=<boot id> count=<n>`, n the number of GET / answered since boot (this one included).
# The count lives in guest memory (/run is tmpfs). Concurrent requests count one by one under a lock file
# created with O_EXCL (`set -C`); waiting for it sleeps on a FIFO read with a timeout. Neither forks: under
# TCG every fork costs milliseconds of the guest's one vCPU, and a dozen waiters spinning on mkdir and usleep
# starved the holder for seconds.
# Each request is also appended to /data/requests.log, so the guest keeps writing to its disk.
run=/run/xenos
lock=$run/count.lock
tries=0
set -C
until { true > "$lock"; } 2>/dev/null; do
  tries=$((tries + 1))
  # A holder that died without unlocking (it holds the lock for microseconds): take the lock over.
  [ $tries -gt 1000 ] && { rm -f "$lock"; tries=0; }
  read -t 0.005 _ <> "$run/tick"
done
set +C
trap 'rm -f "$lock"' EXIT HUP INT TERM PIPE
read n < "$run/count"
n=$((n + 1))
echo "$n" > "$run/count"
rm -f "$lock"
trap - EXIT HUP INT TERM PIPE
read boot < "$run/boot_id"
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $REMOTE_ADDR boot=$boot count=$n" >> /data/requests.log
printf 'Content-Type: text/plain\r\n\r\nboot=%s count=%s\n' "$boot" "$n"
