from app.errors import NotFound, ValidationFailed


class WebhookNotFound(NotFound):
    code = "webhook_not_found"


class DeliveryNotFound(NotFound):
    code = "delivery_not_found"


class InvalidWebhookUrl(ValidationFailed):
    code = "invalid_webhook_url"


class UnknownEventType(ValidationFailed):
    code = "unknown_event_type"
