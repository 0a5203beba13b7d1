from app.errors import AppError, NotFound


class WalletNotFound(NotFound):
    code = "wallet_not_found"


class FundingNotAllowed(AppError):
    status_code = 400
    code = "funding_not_allowed"
