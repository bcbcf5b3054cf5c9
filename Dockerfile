# The twister image for docker-compose.temporal.yml: one image, run as `twister gateway` or `twister worker`.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 twister
WORKDIR /app
COPY pyproject.toml README.md ./
COPY twister ./twister
RUN pip install --no-cache-dir .
USER twister
ENV TWISTER_DATA_DIR=/home/twister/data
ENTRYPOINT ["twister"]
