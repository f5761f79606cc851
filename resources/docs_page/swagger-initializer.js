// Swagger UI for /docs: the document from this server, nothing fetched from anywhere else
// (no validator badge, no external assets), bearer credentials kept only for the tab.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    validatorUrl: null,
    persistAuthorization: false,
  });
});
