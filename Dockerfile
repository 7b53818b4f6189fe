# The Stakewatch worker image: `docker compose up` builds it (see docker-compose.yml).
# A build stage with gcc compiles the hot path (setup.py, mypyc) into a wheel; the image
# installs the wheel and carries no compiler.
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md* ./
COPY streams ./streams
COPY alerts ./alerts
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 stakewatch \
 && useradd --system --uid 10001 --gid stakewatch --create-home --home-dir /home/stakewatch stakewatch \
 && install -d -o stakewatch -g stakewatch /var/lib/stakewatch

COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels
# The seed scenario, at a fixed path for docker-compose.yml's `seed` service (`replay FILE`).
COPY streams/scenarios /app/streams/scenarios

# The data dir: the embedded-broker mode's local archive lives here (with an external Kafka,
# as in compose, the worker keeps its snapshots on a topic); compose mounts a volume on it.
WORKDIR /var/lib/stakewatch
ENV STAKEWATCH_DATA_DIR=/var/lib/stakewatch
# A container's loopback is its own: listen on every interface so the published port and a
# Prometheus in another container reach /metrics.
ENV STAKEWATCH_WEB_HOST=0.0.0.0
USER stakewatch:stakewatch

EXPOSE 6066
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:6066/healthz', timeout=4)"]

ENTRYPOINT ["stakewatch"]
CMD ["worker", "--web-port", "6066"]
