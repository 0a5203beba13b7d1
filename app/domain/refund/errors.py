from app.errors import Conflict


class NotRefundable(Conflict):
    code = "not_refundable"


class RefundExceedsPayment(Conflict):
    code = "refund_exceeds_payment"


class RefundInsufficientFunds(Conflict):
    code = "refund_insufficient_funds"
