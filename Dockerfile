# The twister image for docker-compose.temporal.yml: one image, run as `twister gateway` or `twister worker`.
# Plain `twister` (no embedded servers); ffmpeg/ffprobe come with its pinned dependencies.
FROM python:3.11.14-slim-bookworm
RUN useradd --create-home --uid 10001 twister
WORKDIR /app
COPY pyproject.toml README.md ./
COPY twister ./twister
RUN pip install --no-cache-dir --disable-pip-version-check .
USER twister
ENV TWISTER_DATA_DIR=/home/twister/data
# the gateway's API (and its /metrics), a worker's metrics (TWISTER_WORKER_METRICS_ADDRESS)
EXPOSE 8000 9464
ENTRYPOINT ["twister"]
