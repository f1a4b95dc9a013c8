#!/usr/bin/env bash
# Print the gateway's public URL, https://A-B-C-D.nip.io (the OCI AI Blueprints convention: nip.io
# resolves A-B-C-D.nip.io to A.B.C.D), from the IP of the proxy Service's load balancer, and a
# curl line to try it.
#
#   scripts/external-url.sh                      # asks kubectl (namespace inference-gateway)
#   scripts/external-url.sh -n my-ns -s my-svc   # another namespace or Service name
#   scripts/external-url.sh 140.10.23.76         # an IP you already have (no kubectl)
#   scripts/external-url.sh --scheme http ...    # plain HTTP on port 80
#
# stdout: the URL on the first line, the curl line on the second. Exit 1 when there is no IP yet.
set -euo pipefail

namespace=inference-gateway
service=inference-gateway-proxy
scheme=https
ip=""

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    -n|--namespace) namespace="${2:?}"; shift 2 ;;
    -s|--service) service="${2:?}"; shift 2 ;;
    --scheme) scheme="${2:?}"; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "unknown option: $1" >&2; usage ;;
    *) ip="$1"; shift ;;
  esac
done
case "$scheme" in http|https) ;; *) echo "--scheme must be http or https" >&2; exit 2 ;; esac

if [ -z "$ip" ]; then
  command -v kubectl >/dev/null 2>&1 || { echo "kubectl not found: install it, or pass the load balancer IP as an argument" >&2; exit 1; }
  if ! ip="$(kubectl get svc "$service" -n "$namespace" -o jsonpath='{.status.loadBalancer.ingress[0].ip}')"; then
    echo "kubectl could not read service $service in namespace $namespace (see above); is the current context the cluster?" >&2
    exit 1
  fi
  if [ -z "$ip" ]; then
    echo "service $service in namespace $namespace has no load balancer IP yet; watch it with:" >&2
    echo "  kubectl get svc $service -n $namespace -w" >&2
    exit 1
  fi
fi

# nip.io names need an IPv4 address.
octet='(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])'
if ! [[ "$ip" =~ ^$octet\.$octet\.$octet\.$octet$ ]]; then
  echo "not an IPv4 address: $ip" >&2
  exit 1
fi

url="$scheme://${ip//./-}.nip.io"
echo "$url"
echo "curl $url/ai/models/v1/models -H \"apikey: <your-api-key>\""
if [ "$scheme" = https ]; then
  echo "note: with a self-signed certificate (docs/kubernetes.md, Install), add -k to curl or use --scheme http" >&2
fi
