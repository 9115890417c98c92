# One image for every Tianbao process; docker-compose.yml picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    TIANBAO_HOST=0.0.0.0 TIANBAO_VAR_DIR=/var/lib/tianbao

# CJK fonts: Chinese in the e-documents must render without anything installed by hand.
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-noto-cjk curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY backend ./backend
COPY bot ./bot
COPY scheduler ./scheduler
COPY messages ./messages
RUN pip install . && useradd --system --create-home tianbao && mkdir -p /var/lib/tianbao \
    && chown tianbao /var/lib/tianbao
USER tianbao
EXPOSE 8000
CMD ["tianbao", "api"]
