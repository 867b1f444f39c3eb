# Sourced by the CI scripts: the commands of the README's set-up block, so that CI
# runs exactly what the README tells a newcomer to type and the two cannot drift.
#   readme_command 1   the run command  (cargo run --release -- serve)
#   readme_command 2   the test command (cargo test)
# They are the command lines of the ```sh block under "## Set-up on a fresh machine",
# without their trailing `# comment`.

readme_commands() {
  awk '
    /^## / { in_section = ($0 == "## Set-up on a fresh machine"); next }
    in_section && /^```sh[[:space:]]*$/ { in_block = 1; next }
    in_block && /^```/ { exit }
    in_block { print }
  ' README.md |
    sed -E -e '/^[[:space:]]*#/d' -e 's/[[:space:]]+#.*$//' -e 's/^[[:space:]]+//' |
    grep -v '^$' || true
}

readme_command() {
  local commands count
  commands=$(readme_commands)
  count=$(printf '%s' "$commands" | grep -c '' || true)
  if [ "$count" -ne 2 ]; then
    echo "ci: expected two commands (run, test) in the README's set-up block, found $count:" >&2
    printf '%s\n' "$commands" >&2
    return 1
  fi
  printf '%s\n' "$commands" | sed -n "${1}p"
}
