"""The pieces every section of the config schema is made of: strict frozen models, column
references, and Keras objects written as `{type: ClassName, <constructor arguments>}`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

Name = str | int  # a column, by name or by index


class Strict(BaseModel):
    """Unknown keys are errors; parsed configs never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class KerasObject(BaseModel):
    """`{type: ClassName, <constructor arguments>}`; the arguments are checked by the registry."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str = Field(description="The Keras class name, e.g. Dense, Adam, EarlyStopping "
                                  "(`kerastrain list layers` shows them); the other keys are "
                                  "its constructor arguments.")

    @model_validator(mode="before")
    @classmethod
    def _class_name_alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and "class_name" in data and "type" not in data:
            data = dict(data)
            data["type"] = data.pop("class_name")
            if isinstance(data.get("config"), dict):
                data.update(data.pop("config"))
        return data

    @property
    def args(self) -> dict[str, Any]:
        return dict(self.model_extra or {})
