#!/bin/sh
# Prints the Alertmanager configuration of docker-compose.yml from the same receiver
# variables the worker reads (docs/alerts.md), so operations alerts (worker down, lag, dead
# letters, delivery failures: infra/prometheus/rules/alerts.yml) reach the same people:
#   STAKEWATCH_SLACK_WEBHOOK_URL      every operations alert, firing and resolved
#   STAKEWATCH_PAGERDUTY_ROUTING_KEY  the critical ones page (STAKEWATCH_PAGERDUTY_URL: another
#                                     Events API v2 endpoint, e.g. a test server)
# Written at container start (the compose entrypoint) because Alertmanager does not read the
# environment, and a receiver with an empty secret would only fail at the first alert.
# ALERTMANAGER_GROUP_WAIT (default 30s) is how long the first alert of a group waits for others.
set -eu

slack="${STAKEWATCH_SLACK_WEBHOOK_URL:-}"
pd_key="${STAKEWATCH_PAGERDUTY_ROUTING_KEY:-}"
pd_url="${STAKEWATCH_PAGERDUTY_URL:-}"
wait="${ALERTMANAGER_GROUP_WAIT:-30s}"

plain() {  # a value that goes between single quotes in YAML: no quote, no line break
  case "$2" in
    *"'"* | *'
'*) echo "config.sh: $1 holds a quote or a line break" >&2; exit 2 ;;
  esac
}
plain STAKEWATCH_SLACK_WEBHOOK_URL "$slack"
plain STAKEWATCH_PAGERDUTY_ROUTING_KEY "$pd_key"
plain STAKEWATCH_PAGERDUTY_URL "$pd_url"
plain ALERTMANAGER_GROUP_WAIT "$wait"
if [ -z "$slack$pd_key" ]; then
  echo "config.sh: no STAKEWATCH_SLACK_WEBHOOK_URL or STAKEWATCH_PAGERDUTY_ROUTING_KEY: operations alerts reach nobody" >&2
fi

cat <<YAML
route:
  receiver: ops
  group_by: [alertname, instance]
  group_wait: '$wait'
  group_interval: 5m
  repeat_interval: 4h
YAML
if [ -n "$pd_key" ]; then
  cat <<YAML
  routes:
    - receiver: ops-page
      matchers: ['severity="critical"']
      continue: true
    - receiver: ops           # a matching child route replaces the root's receiver
YAML
fi
cat <<YAML
receivers:
  - name: ops
YAML
if [ -n "$slack" ]; then
  cat <<YAML
    slack_configs:
      - api_url: '$slack'
        send_resolved: true
YAML
fi
if [ -n "$pd_key" ]; then
  cat <<YAML
  - name: ops-page
    pagerduty_configs:
      - routing_key: '$pd_key'
        send_resolved: true
YAML
  if [ -n "$pd_url" ]; then
    echo "        url: '$pd_url'"
  fi
fi
