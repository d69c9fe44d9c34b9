// Starts the vendored Swagger UI on RDN's OpenAPI document (no CDN, no inline script).
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({ url: "/api/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
});
