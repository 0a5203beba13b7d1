from app.errors import Conflict, NotFound


class PaymentRequestNotFound(NotFound):
    code = "payment_request_not_found"


class RequestNotPayable(Conflict):
    code = "request_not_payable"
