# One image for the API and both kinds of worker; the command picks the role.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /srv/loupe

# Dependencies first, so a code change does not reinstall torch.
COPY pyproject.toml README.md ./
RUN mkdir -p app workers ml && touch app/__init__.py workers/__init__.py ml/__init__.py \
    && pip install . && pip uninstall -y loupe
COPY . .
RUN pip install --no-deps -e . && useradd --create-home loupe && mkdir -p /data && chown loupe /data
USER loupe

ENV LOUPE_VAR_DIR=/data LOUPE_MEDIA_DIR=/data/media
EXPOSE 8000
CMD ["loupe", "serve", "--host", "0.0.0.0", "--no-embedded-worker"]
