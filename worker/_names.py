"""How a setting is spelled in each layer; import-light, so ``--help`` stays fast."""

ENV_PREFIX = "DEVIN_TERMINATE_"
SPECIAL_ENV = {"org_id": "DEVIN_ORG_ID", "base_url": "DEVIN_API_URL"}
TOKEN_ENV = "DEVIN_API_KEY"
PASSWORD_ENV = "DEVIN_TERMINATE_REDIS_PASSWORD"  # the Redis password of a fleet


def env_name(field: str) -> str:
    """The env variable of a setting: ``max_attempts`` -> ``DEVIN_TERMINATE_MAX_ATTEMPTS``."""
    return SPECIAL_ENV.get(field, ENV_PREFIX + field.upper())


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")
