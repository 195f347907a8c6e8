# seatable-cred shell functions for bash and zsh.
#
#   source /path/to/plugins/shell/seatable-cred.sh
#   seatable_curl "$GATEWAY/api/v2/dtables/$UUID/metadata/"   # curl with the base token header
#   seatable_env && echo "$SEATABLE_BASE_UUID"                  # export the base token and context
#
# The token never appears in argv: curl reads the header from a file
# descriptor (-H @<(…)), and the helper prints it on stdout.
# SEATABLE_CRED_BIN overrides the helper's path; extra arguments to
# seatable_env (e.g. --profile crm) go to `seatable-cred get`.

seatable_curl() {
  local header
  header="$("${SEATABLE_CRED_BIN:-seatable-cred}" get -o header)" || return $?
  curl -H @<(printf '%s\n' "$header") "$@"
}

seatable_env() {
  local exports
  exports="$("${SEATABLE_CRED_BIN:-seatable-cred}" get -o env "$@")" || return $?
  eval "$exports"
}
