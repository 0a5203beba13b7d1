from app.errors import NotFound


class ProductNotFound(NotFound):
    code = "product_not_found"
