#!/usr/bin/env bash
# Run terraform, honouring TF_PLUGIN_MIRROR (a directory holding a provider filesystem mirror).
# With it set, a Terraform CLI config that installs providers from that mirror only is written
# under .cache/ and passed through TF_CLI_CONFIG_FILE; without it Terraform downloads providers
# as usual. Nothing in the user's home directory is read or written.
set -euo pipefail

if [ -n "${TF_PLUGIN_MIRROR:-}" ]; then
  mirror="$(cd "$TF_PLUGIN_MIRROR" && pwd)"
  root="$(cd "$(dirname "$0")/.." && pwd)"
  config="$root/.cache/terraform-mirror.tfrc"
  mkdir -p "$root/.cache"
  cat > "$config.tmp.$$" <<TFRC
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/*/*"]
  }
  direct {
    exclude = ["registry.terraform.io/*/*"]
  }
}
TFRC
  mv "$config.tmp.$$" "$config"
  export TF_CLI_CONFIG_FILE="$config"
fi

exec terraform "$@"
