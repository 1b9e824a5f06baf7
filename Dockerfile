# firelane app image (production-style deployment with docker-compose.yml; PostGIS runs in its own container)
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends gdal-bin fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gis ./gis
COPY api ./api
COPY web ./web
COPY data ./data
RUN pip install --no-cache-dir .
RUN useradd --system --home /app firelane
USER firelane
EXPOSE 8000
ENV FIRELANE_SERVER_HOST=0.0.0.0 FIRELANE_SERVER_PORT=8000
CMD ["sh", "-c", "firelane init && firelane serve --host 0.0.0.0 --port 8000"]
