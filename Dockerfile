# The project's image, for users who build with a container engine and push to a registry. The
# test bed builds the same layout without an engine (scripts/images): Node.js 24 at
# /usr/local/bin/node, the built app in /app, user 65532.
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY operator ./operator
RUN npm run build && npm ci --omit=dev --ignore-scripts

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY templates ./templates
COPY crds ./crds
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/node"]
CMD ["/app/dist/operator/main.js"]
