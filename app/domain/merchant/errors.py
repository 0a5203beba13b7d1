from app.errors import NotFound


class MerchantNotFound(NotFound):
    code = "merchant_not_found"
