# Purser's container image: `purser` is the entrypoint, `serve` the default command.
#
#   docker build -t purser .
#   docker run --rm purser --help
#
# docker-compose.yaml runs it with PostgreSQL (`purser migrate`, `purser serve`,
# `purser worker`). No secret is built in: DATABASE_URL, PURSER_SECRET_KEY and the rest
# (docs/configuration.md) come from the environment at run time.

# Python 3.11: the lowest that pyproject.toml's requires-python admits, the one the tests
# run on. The tag names the patch release and the Debian release (12, as on the machines
# the tests run on); moving either is a deliberate edit of both FROM lines.
FROM python:3.11.17-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
WORKDIR /opt/purser

# The pinned dependencies first, in a layer of their own: a change to Purser's code does
# not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && /opt/venv/bin/pip install --no-cache-dir --requirement requirements.txt

# Editable on purpose: `purser migrate` finds alembic.ini and migrations/ beside app/
# (app.migrations.ROOT), which a built wheel would leave behind. The runtime stage keeps
# this folder at the same path.
COPY README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps --editable . \
    && /opt/venv/bin/python -m compileall -q app migrations

# Purser's own SDK: `purser demo` runs on it (its dependencies are Purser's already).
COPY sdk/python ./sdk/python
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps ./sdk/python


FROM python:3.11.17-slim-bookworm

# A fixed uid/gid, so that orchestrators checking "runs as non-root" can see it.
RUN groupadd --system --gid 10001 purser \
    && useradd --system --no-log-init --uid 10001 --gid purser \
        --create-home --home-dir /home/purser --shell /usr/sbin/nologin purser

# Code and dependencies stay root's: the purser user can read them, not change them.
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/purser /opt/purser

# PURSER_HOST: inside a container the API must listen beyond loopback for a published
# port to reach it. PURSER_DATA_DIR is only used without DATABASE_URL (the embedded
# PostgreSQL, which refuses to run as root) and for a sandbox's generated secret key.
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PURSER_HOST=0.0.0.0 \
    PURSER_PORT=8000 \
    PURSER_DATA_DIR=/home/purser/.purser

USER 10001:10001
WORKDIR /home/purser
EXPOSE 8000

# Liveness of `purser serve` (no API key, no database query); slim has no curl. The
# compose file checks readiness (/api/v1/health/ready) and gives the worker its own check.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PURSER_PORT', '8000') + '/api/v1/health', timeout=4)"]

ENTRYPOINT ["purser"]
CMD ["serve"]
