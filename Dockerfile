# One image serves the ingest service, the API and the simulator, and the command picks one:
#   smartoffice-ingest | smartoffice-api | smartoffice-sim
# Configuration comes from SMARTOFFICE_* environment variables at run time, and the image
# contains no credentials. docker-compose.yml runs it with the production settings.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The services run as this unprivileged user. Code and catalogue stay owned by root, so the
# running process cannot change them.
RUN useradd --system --uid 10001 --user-group --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin smartoffice

WORKDIR /app

# Install the pinned dependencies from pyproject.toml in a layer of their own, so that a
# change to the source reuses it and only the last install below runs again.
COPY pyproject.toml ./
RUN python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep=chr(10))" \
        > /tmp/requirements.txt \
    && pip install --requirement /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The build context is the repository minus what .dockerignore excludes. The catalogue
# ends up at /app/config/regency.yaml.
COPY . ./
RUN pip install --no-deps . \
    && rm -rf build ./*.egg-info

# The API's built-in default points next to the installed package, where no catalogue exists.
ENV SMARTOFFICE_CATALOGUE_FILE=/app/config/regency.yaml

# The dead-letter store, shared by ingest and API through a volume mounted here; a new named
# volume takes this folder's owner.
RUN mkdir -p /var/lib/smartoffice && chown 10001:10001 /var/lib/smartoffice
ENV SMARTOFFICE_DEAD_LETTER_PATH=/var/lib/smartoffice/dead-letters.sqlite3

USER 10001:10001
EXPOSE 8000
CMD ["smartoffice-api"]
