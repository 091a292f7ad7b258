# One image for the myelin daemon (in-cluster control plane) and for API replicas (pods).
# Build it from a clone (docs/kubernetes.md, "The image"):
#   npm ci && npm pack                       # writes myelin-<version>.tgz beside this file
#   docker build -t myelin/replica:<version> .
# `myelin render --image` and `myelin up --target kubernetes --image` take the tag you push.
FROM node:20-bookworm-slim

# Python for Cortex's PythonPredictor projects (the bridge needs numpy; venv for the requirements.txt the
# init container installs, `fetch-project --python-env`); the model runtimes ship in the package.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-numpy python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# onnxruntime-node: no CUDA download at install, no telemetry at run time.
ENV ONNXRUNTIME_NODE_INSTALL=skip \
    ORT_DISABLE_TELEMETRY=1 \
    MYELIN_PYTHON=/usr/bin/python3 \
    NODE_ENV=production

COPY myelin-*.tgz /tmp/
# The package, installed globally (`myelin` on PATH); /node_modules/myelin lets a predictor under
# /project `import … from 'myelin'` without installing it.
RUN npm install -g --no-audit --no-fund /tmp/myelin-*.tgz \
 && rm /tmp/myelin-*.tgz \
 && mkdir -p /project /node_modules \
 && ln -s "$(npm root -g)/myelin" /node_modules/myelin \
 && chown node:node /project

# The project's files arrive here (init container `myelin fetch-project --dest /project`).
WORKDIR /project
USER node
# 8888: a replica (and the gateway in the daemon's pod); 8889: the daemon's control API.
EXPOSE 8888 8889
ENTRYPOINT ["myelin"]
# The daemon; API pods run `myelin replica` (the command the kubernetes target sets).
CMD ["up", "--target", "kubernetes", "--in-cluster", "--host", "0.0.0.0", "--gateway-host", "0.0.0.0"]
