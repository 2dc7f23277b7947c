# Sourced by the init scripts: arg KEY prints the value of KEY=VALUE on the kernel command line (nothing
# when absent).
arg() {
  for word in $(cat /proc/cmdline); do
    case "$word" in "$1="*) echo "${word#*=}"; return ;; esac
  done
}
