# seatable-cred shell functions for bash and zsh.
#
#   source /path/to/plugins/shell/seatable-cred.sh
#   seatable_curl "$GATEWAY/api/v2/dtables/$UUID/metadata/"   # curl with the base token header
#   seatable_env && echo "$SEATABLE_BASE_UUID"                  # export the base token and context
#
# The token never appears in argv: curl reads the header from a file
# descriptor (-H @<(…)), and the helper prints it on stdout. seatable_curl
# sends it only to the profile's SeaTable server: every URL among its
# arguments must be of that server's origin (scheme, host, port).
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

seatable_curl() {
  local bin="${SEATABLE_CRED_BIN:-seatable-cred}" context header line value arg allowed="" urls=0
  context="$("$bin" get -o env)" || return $?
  # The server's origin and the API gateway's (from the helper's context).
  while IFS= read -r line; do
    case "$line" in
      "export SEATABLE_SERVER_URL='"*|"export SEATABLE_API_GATEWAY_URL='"*)
        value="${line#*=\'}"
        value="${value%\'}"
        allowed="$allowed $(_seatable_origin "$value") "
        ;;
    esac
  done <<EOF
$context
EOF
  for arg in "$@"; do
    case "$arg" in
      *://*)
        urls=$((urls + 1))
        case "$allowed" in
          *" $(_seatable_origin "$arg") "*) ;;
          *)
            printf 'seatable_curl: refusing to send the base token to %s: it is not the profile'"'"'s SeaTable server\n' \
              "$(_seatable_origin "$arg")" >&2
            return 2
            ;;
        esac
        ;;
    esac
  done
  if [ "$urls" -eq 0 ]; then
    printf 'seatable_curl: give the full URL (https://…) of the SeaTable server\n' >&2
    return 2
  fi
  header="$("$bin" get -o header)" || return $?
  curl -H @<(printf '%s\n' "$header") "$@"
}

seatable_env() {
  local exports
  exports="$("${SEATABLE_CRED_BIN:-seatable-cred}" get -o env "$@")" || return $?
  eval "$exports"
}
