# seatable-cred shell functions for bash and zsh.
#
#   source /path/to/plugins/shell/seatable-cred.sh
#   seatable_curl "$GATEWAY/api/v2/dtables/$UUID/metadata/" --silent   # curl with the base token header
#   seatable_env && echo "$SEATABLE_BASE_UUID"                          # export the base token and context
#
# The token never appears in argv: curl reads the header from a file
# descriptor (-H @<(…)), and the helper prints it on stdout. seatable_curl
# sends it only to the profile's SeaTable server: it takes exactly one URL,
# its first argument, which must be of that server's origin (scheme, host,
# port); every other argument must be a curl option (or its value), and
# options that could send the request elsewhere (--url, --next, -x, -K, …)
# are refused. ~/.curlrc is not read (-q).
# SEATABLE_CRED_BIN overrides the helper's path; extra arguments to
# seatable_env (e.g. --profile crm) go to `seatable-cred get`.

# scheme://host[:port] of a URL, lower-cased, without the scheme's default port.
_seatable_origin() {
  local url="$1" scheme rest authority
  scheme="${url%%://*}"
  rest="${url#*://}"
  authority="${rest%%/*}"
  authority="${authority%%\?*}"
  authority="${authority%%#*}"
  authority="${authority##*@}"
  scheme="$(printf '%s' "$scheme" | tr '[:upper:]' '[:lower:]')"
  authority="$(printf '%s' "$authority" | tr '[:upper:]' '[:lower:]')"
  case "$scheme:$authority" in
    https:*:443) authority="${authority%:443}" ;;
    http:*:80) authority="${authority%:80}" ;;
  esac
  printf '%s://%s' "$scheme" "$authority"
}

_seatable_refuse() {
  printf 'seatable_curl: %s\n' "$1" >&2
  return 2
}

# Whether the arguments after the URL are curl options (with their values)
# that keep the request on that URL.
_seatable_curl_options() {
  local arg value=0 i ch
  for arg in "$@"; do
    if [ "$value" = 1 ]; then
      value=0
      continue
    fi
    case "$arg" in
      --url | --url=* | --next | --proxy | --proxy=* | --preproxy* | --proxy1.0* | --socks* | \
        --config | --config=* | --connect-to* | --resolve* | --doh-url*)
        _seatable_refuse "$arg could send the request (and the token) elsewhere: not with seatable_curl"
        return 2
        ;;
      --*=*) ;;
      --output | --header | --data | --data-raw | --data-binary | --data-urlencode | --data-ascii | \
        --json | --request | --write-out | --upload-file | --form | --form-string | --max-time | \
        --connect-timeout | --user-agent | --referer | --cookie | --cookie-jar | --range | --retry | \
        --retry-delay | --retry-max-time | --continue-at | --limit-rate | --cacert | --capath | \
        --cert | --key | --output-dir | --time-cond | --user | --dump-header | --trace | \
        --trace-ascii | --stderr | --speed-limit | --speed-time | --max-filesize | --max-redirs | \
        --variable | --expand-data | --expand-header | --expand-url)
        value=1
        ;;
      --*) ;;
      -?*)
        # A cluster of short options: the first one that takes a value
        # takes the rest of the cluster, or the next argument.
        i=1
        while [ "$i" -lt "${#arg}" ]; do
          ch="${arg:$i:1}"
          case "$ch" in
            x | K | :)
              _seatable_refuse "-$ch could send the request (and the token) elsewhere: not with seatable_curl"
              return 2
              ;;
            o | H | d | X | w | T | F | m | A | e | b | c | r | C | E | z | u | D | Y | y | t)
              [ "$i" -eq $((${#arg} - 1)) ] && value=1
              break
              ;;
          esac
          i=$((i + 1))
        done
        ;;
      *)
        _seatable_refuse "'$arg' is not an option: seatable_curl takes one URL, its first argument"
        return 2
        ;;
    esac
  done
}

seatable_curl() {
  local bin="${SEATABLE_CRED_BIN:-seatable-cred}" url="${1:-}" context header line value allowed=""
  case "$url" in
    *://*) ;;
    *)
      _seatable_refuse "give the full URL (https://…) of the SeaTable server as the first argument"
      return 2
      ;;
  esac
  shift
  context="$("$bin" get -o env)" || return $?
  # The server's origin and the API gateway's (from the helper's context).
  while IFS= read -r line; do
    case "$line" in
      "export SEATABLE_SERVER_URL='"* | "export SEATABLE_API_GATEWAY_URL='"*)
        value="${line#*=\'}"
        value="${value%\'}"
        allowed="$allowed $(_seatable_origin "$value") "
        ;;
    esac
  done <<EOF
$context
EOF
  case "$allowed" in
    *" $(_seatable_origin "$url") "*) ;;
    *)
      _seatable_refuse "refusing to send the base token to $(_seatable_origin "$url"): it is not the profile's SeaTable server"
      return 2
      ;;
  esac
  _seatable_curl_options "$@" || return $?
  header="$("$bin" get -o header)" || return $?
  curl -q -H @<(printf '%s\n' "$header") --url "$url" "$@"
}

seatable_env() {
  local exports
  exports="$("${SEATABLE_CRED_BIN:-seatable-cred}" get -o env "$@")" || return $?
  eval "$exports"
}
