#!/usr/bin/env bash
# Prints one live Deployment per channel of a channels ConfigMap (default
# live-channels.configmap.yaml beside this script), from live-channel.template.yaml
# (or the template given second, e.g. live-channel-gpu.template.yaml):
#   deploy/kubernetes/render-channels.sh | kubectl apply -f -
# Channel names must be DNS labels (lower-case letters, digits, '-'): they name the
# Deployments. Reads the ConfigMap's `data:` keys with awk (no kubectl, no YAML library).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
configmap=${1:-$here/live-channels.configmap.yaml}
template=${2:-$here/live-channel.template.yaml}
channels=$(awk '
  /^data:/ { in_data = 1; next }
  in_data && /^[^ #]/ { in_data = 0 }
  in_data && /^  [A-Za-z0-9._-]+:/ { sub(/^  /, ""); sub(/:.*/, ""); print }
' "$configmap")
[ -n "$channels" ] || { echo "render-channels: no channels in $configmap" >&2; exit 1; }
first=1
for c in $channels; do
  if ! [[ $c =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || [ ${#c} -gt 40 ]; then
    echo "render-channels: channel '$c' is not a DNS label of at most 40 characters" >&2
    exit 1
  fi
  [ $first = 1 ] || echo "---"
  first=0
  sed "s/@CHANNEL@/$c/g" "$template"
done
