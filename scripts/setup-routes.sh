#!/usr/bin/env bash
# Host routes for zksd's full-system VPN (run by src/daemon/system/routes.ts; usable by hand, as root).
# Like OpenVPN's def1: 0.0.0.0/1 + 128.0.0.0/1 (IPv6: ::/1 + 8000::/1) into the TUN win over the default route
# without modifying it; host routes keep each relay endpoint, and each bypass prefix, on the gateway that served it
# before. Only `ip` is used. All or nothing: when a step fails, the routes this run added are deleted again.
#
#   setup-routes.sh up --tun NAME [--relay ADDR]... [--bypass CIDR]... [--ipv6 carry|blackhole] [--netns NS]
#   setup-routes.sh bypass-add --tun NAME --bypass CIDR [--bypass CIDR]... [--netns NS]
#   setup-routes.sh down [--netns NS]          < lines printed by up / bypass-add
#   setup-routes.sh bypass-del [--netns NS]    < only `route bypass ...` lines
#
# Output of up / bypass-add, one line per decision (fields never contain spaces):
#   route <kind> <key> <family> <args...>   added; `ip -<family> route del <args...>` removes it exactly
#   skip <kind> <key> <reason>              nothing added: local (a local address), exists (the same prefix is
#                                           already routed outside the TUN), unreachable (a relay with no route)
# kinds: tunnel (the /1 routes), blackhole (IPv6 /1 unreachable routes, --ipv6 blackhole), relay, bypass.
# Output of down / bypass-del:  deleted|absent <family> <args...>
# Bypass prefixes must be network-aligned (the caller normalises) and /2 or longer: a /0 or /1 would collide with
# the tunnel routes. --netns (tests) applies everything with `ip -n NS`.
# Exit status: 0 done, 1 an ip command failed (rolled back), 2 bad arguments.
set -euo pipefail
shopt -s inherit_errexit # a failed check inside $(...) must stop the run, not yield an empty value

die() { echo "setup-routes.sh: $2" >&2; exit "$1"; }
usage() { die 2 "$1 (usage: see the header of $0)"; }

NETNS=
TUN=
IPV6=carry
RELAYS=()
BYPASS=()

ipn() { if [[ -n $NETNS ]]; then ip -n "$NETNS" "$@"; else ip "$@"; fi; }

parse_flags() {
  while (($#)); do
    case $1 in
      --tun) TUN=${2:-}; shift 2 || usage "--tun needs a value" ;;
      --relay) RELAYS+=("${2:-}"); shift 2 || usage "--relay needs a value" ;;
      --bypass) BYPASS+=("${2:-}"); shift 2 || usage "--bypass needs a value" ;;
      --ipv6) IPV6=${2:-}; shift 2 || usage "--ipv6 needs a value" ;;
      --netns) NETNS=${2:-}; shift 2 || usage "--netns needs a value" ;;
      *) usage "unknown argument '$1'" ;;
    esac
  done
  [[ $IPV6 == carry || $IPV6 == blackhole ]] || usage "--ipv6 must be carry or blackhole, not '$IPV6'"
  [[ -z $NETNS || $NETNS =~ ^[A-Za-z0-9_.-]{1,64}$ ]] || usage "bad --netns '$NETNS'"
}

need_tun() {
  [[ $TUN =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || usage "--tun must be an interface name (1-15 of A-Z a-z 0-9 _ . -), not '$TUN'"
  ipn link show dev "$TUN" >/dev/null 2>&1 || die 1 "interface '$TUN' does not exist (bring the TUN up first)"
}

# family_of ADDR → 4 or 6; exits 2 when ADDR is not an IP literal.
family_of() {
  if [[ $1 =~ ^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$ ]]; then
    echo 4
  elif [[ $1 == *:* && $1 =~ ^[0-9A-Fa-f:.]{2,45}$ ]]; then
    echo 6
  else
    usage "'$1' is not an IPv4 or IPv6 address"
  fi
}

# check_cidr CIDR → prints the family; rejects malformed, unaligned IPv4 and prefixes shorter than /2.
check_cidr() {
  [[ $1 =~ ^([^/]+)/(0|[1-9][0-9]{0,2})$ ]] || usage "bypass '$1' is not a CIDR (address/prefix)"
  local addr=${BASH_REMATCH[1]} plen=$((10#${BASH_REMATCH[2]})) fam max
  fam=$(family_of "$addr")
  max=$([[ $fam == 4 ]] && echo 32 || echo 128)
  ((plen <= max)) || usage "bypass '$1': prefix length must be at most /$max"
  ((plen >= 2)) || usage "bypass '$1': prefixes shorter than /2 would collide with the tunnel's /1 routes"
  if [[ $fam == 4 ]]; then
    local a b c d n
    IFS=. read -r a b c d <<<"$addr"
    n=$(((a << 24) | (b << 16) | (c << 8) | d))
    ((plen == 32 || (n & ((1 << (32 - plen)) - 1)) == 0)) || usage "bypass '$1' has host bits set"
  fi
  echo "$fam"
}

# lookup FAMILY ADDR: the route the kernel uses for ADDR now → R_TYPE, R_VIA ("" or "[inet|inet6 ]GW"), R_DEV.
lookup() {
  local out i
  if ! out=$(ipn -"$1" route get "$2" 2>&1); then
    [[ $out == *"unreachable"* || $out == *"No route to host"* ]] || die 1 "ip route get $2: $out"
    R_TYPE=none R_VIA= R_DEV=
    return
  fi
  local -a t
  read -ra t <<<"${out%%$'\n'*}"
  R_TYPE=unicast R_VIA= R_DEV=
  case ${t[0]} in local | broadcast | multicast | unreachable | blackhole | prohibit | throw | anycast) R_TYPE=${t[0]} ;; esac
  for ((i = 1; i < ${#t[@]}; i++)); do
    case ${t[i]} in
      via) if [[ ${t[i + 1]:-} == inet || ${t[i + 1]:-} == inet6 ]]; then R_VIA="${t[i + 1]} ${t[i + 2]:-}"; else R_VIA=${t[i + 1]:-}; fi ;;
      dev) R_DEV=${t[i + 1]:-} ;;
    esac
  done
}

# lookup_main FAMILY ADDR: like lookup, but over the main table ignoring routes into the TUN — what `ip route get`
# answered before the tunnel routes existed (bypass-add runs while they do). Longest prefix, then lowest metric.
lookup_main() {
  local best
  best=$(ipn -"$1" route show table main match "$2" | awk -v tun="$TUN" -v max="$([[ $1 == 4 ]] && echo 32 || echo 128)" '
    /^[ \t]/ { next }  # nexthop lines of multipath routes
    {
      i = 1; type = "unicast"
      if ($1 ~ /^(unicast|local|broadcast|multicast|unreachable|blackhole|prohibit|throw|anycast)$/) { type = $1; i = 2 }
      plen = ($i == "default") ? 0 : (index($i, "/") ? substr($i, index($i, "/") + 1) + 0 : max)
      via = ""; dev = ""; metric = 0
      for (j = i + 1; j <= NF; j++) {
        if ($j == "via") via = ($(j + 1) == "inet" || $(j + 1) == "inet6") ? $(j + 1) " " $(j + 2) : $(j + 1)
        if ($j == "dev") dev = $(j + 1)
        if ($j == "metric") metric = $(j + 1) + 0
      }
      if (dev == tun) next
      if (plen > bp || (plen == bp && metric < bm) || !seen) { seen = 1; bp = plen; bm = metric; bt = type; bv = via; bd = dev }
    }
    END { if (seen) print bt "|" bv "|" bd }')
  [[ -n $best ]] || die 1 "no route to $2 outside '$TUN'"
  IFS='|' read -r R_TYPE R_VIA R_DEV <<<"$best"
}

ADDED=() # "family args..." of routes added by this run, for rollback
OUT=()

# Any non-zero exit after routes were added deletes them again, last first (an EXIT trap: die can come from
# anywhere, and command substitutions do not inherit it).
rollback() {
  local i
  for ((i = ${#ADDED[@]} - 1; i >= 0; i--)); do
    local -a r
    read -ra r <<<"${ADDED[i]}"
    ipn -"${r[0]}" route del "${r[@]:1}" 2>/dev/null || true
  done
  ((${#ADDED[@]} == 0)) || echo "setup-routes.sh: rolled back ${#ADDED[@]} route(s) added by this run" >&2
  ADDED=()
}
trap 'rc=$?; ((rc == 0)) || rollback' EXIT

# add KIND KEY FAMILY ARGS...
add() {
  local kind=$1 key=$2 fam=$3 err
  shift 3
  err=$(ipn -"$fam" route add "$@" 2>&1) || die 1 "ip -$fam route add $* failed: $err"
  ADDED+=("$fam $*")
  OUT+=("route $kind $key $fam $*")
}

# route_around KIND KEY FAMILY PREFIX: a route for PREFIX on the path found by the last lookup (R_*).
route_around() {
  local kind=$1 key=$2 fam=$3 prefix=$4
  case $R_TYPE in
    local) OUT+=("skip $kind $key local"); return ;;
    # A relay address the host cannot reach (say an AAAA record on an IPv4-only network) is one the daemon will
    # not use; a bypass must have a path, or its traffic would silently go through the tunnel instead.
    none) [[ $kind == relay ]] || die 1 "no route to $key"; OUT+=("skip $kind $key unreachable"); return ;;
    unicast | broadcast | multicast) ;;
    *) die 1 "$kind $key: the current route is '$R_TYPE', not a path out" ;;
  esac
  [[ -n $R_DEV ]] || die 1 "$kind $key: no output interface in 'ip route get'"
  [[ $R_DEV != "$TUN" ]] || die 1 "$kind $key is already routed into '$TUN' (inside its own prefix?)"
  local existing
  existing=$(ipn -"$fam" route show table main exact "$prefix" 2>/dev/null) || true
  if [[ -n $existing ]]; then
    [[ " ${existing//$'\n'/ } " != *" dev $TUN "* ]] || die 1 "$kind $key is the prefix of '$TUN' itself"
    OUT+=("skip $kind $key exists")
    return
  fi
  local -a via=()
  [[ -z $R_VIA ]] || read -ra via <<<"via $R_VIA"
  add "$kind" "$key" "$fam" "$prefix" "${via[@]}" dev "$R_DEV"
}

cmd_up() {
  parse_flags "$@"
  local r c fam
  local -a relay_fam=() bypass_fam=()
  for r in "${RELAYS[@]}"; do relay_fam+=("$(family_of "$r")"); done
  for c in "${BYPASS[@]}"; do bypass_fam+=("$(check_cidr "$c")"); done
  need_tun
  local i
  # Relay and bypass routes first, the /1 routes last: the relay never goes into the TUN, not even briefly.
  for i in "${!RELAYS[@]}"; do
    r=${RELAYS[i]} fam=${relay_fam[i]}
    lookup "$fam" "$r"
    route_around relay "$r" "$fam" "$r/$([[ $fam == 4 ]] && echo 32 || echo 128)"
  done
  for i in "${!BYPASS[@]}"; do
    c=${BYPASS[i]} fam=${bypass_fam[i]}
    lookup "$fam" "${c%/*}"
    route_around bypass "$c" "$fam" "$c"
  done
  add tunnel 0.0.0.0/1 4 0.0.0.0/1 dev "$TUN"
  add tunnel 128.0.0.0/1 4 128.0.0.0/1 dev "$TUN"
  if [[ -z $(ipn -6 route show default 2>/dev/null) ]]; then
    OUT+=("skip tunnel ::/1 no-ipv6-default-route")
  elif [[ $IPV6 == carry ]]; then
    add tunnel ::/1 6 ::/1 dev "$TUN"
    add tunnel 8000::/1 6 8000::/1 dev "$TUN"
  else
    # Apps get ENETUNREACH at once and fall back to IPv4 (Happy Eyeballs), even with the kill switch off.
    add blackhole ::/1 6 unreachable ::/1
    add blackhole 8000::/1 6 unreachable 8000::/1
  fi
  printf '%s\n' "${OUT[@]}"
}

cmd_bypass_add() {
  parse_flags "$@"
  ((${#BYPASS[@]})) || usage "bypass-add needs --bypass CIDR"
  local c fam
  local -a fams=()
  for c in "${BYPASS[@]}"; do fams+=("$(check_cidr "$c")"); done
  need_tun
  local i
  for i in "${!BYPASS[@]}"; do
    c=${BYPASS[i]} fam=${fams[i]}
    lookup "$fam" "${c%/*}"
    [[ $R_DEV != "$TUN" ]] || lookup_main "$fam" "${c%/*}"
    route_around bypass "$c" "$fam" "$c"
  done
  printf '%s\n' "${OUT[@]}"
}

# cmd_del ONLY_KIND FLAGS...: deletes the routes of the `route` lines on stdin, last added first. A route that is
# already gone (its device vanished with a crashed daemon) is reported `absent`, not an error.
cmd_del() {
  local only=$1
  shift
  parse_flags "$@"
  local -a lines=()
  local line
  while IFS= read -r line || [[ -n $line ]]; do
    [[ $line == route\ * ]] || continue
    lines+=("$line")
  done
  local i tok
  for line in "${lines[@]}"; do # validate every record before deleting any
    local -a f
    read -ra f <<<"$line"
    ((${#f[@]} >= 5)) || usage "malformed record '$line'"
    [[ -z $only || ${f[1]} == "$only" ]] || usage "bypass-del only takes 'route bypass' records, not '$line'"
    [[ ${f[3]} == 4 || ${f[3]} == 6 ]] || usage "bad family in record '$line'"
    for tok in "${f[@]:4}"; do [[ $tok =~ ^[A-Za-z0-9.:/_-]+$ ]] || usage "bad token '$tok' in record '$line'"; done
  done
  local failed=0 err
  for ((i = ${#lines[@]} - 1; i >= 0; i--)); do
    local -a f
    read -ra f <<<"${lines[i]}"
    if err=$(ipn -"${f[3]}" route del "${f[@]:4}" 2>&1); then
      echo "deleted ${f[3]} ${f[*]:4}"
    elif [[ $err == *"No such process"* || $err == *"Cannot find device"* || $err == *"No such device"* ]]; then
      echo "absent ${f[3]} ${f[*]:4}"
    else
      echo "setup-routes.sh: ip -${f[3]} route del ${f[*]:4}: $err" >&2
      failed=1
    fi
  done
  ((failed == 0)) || exit 1
}

(($#)) || usage "missing verb"
verb=$1
shift
case $verb in
  up) cmd_up "$@" ;;
  bypass-add) cmd_bypass_add "$@" ;;
  down) cmd_del "" "$@" ;;
  bypass-del) cmd_del bypass "$@" ;;
  *) usage "unknown verb '$verb' (up, bypass-add, bypass-del, down)" ;;
esac
