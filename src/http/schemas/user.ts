import Type from 'typebox';
import { DateTime, Nullable } from './common.ts';

export const User = Type.Object(
  {
    id: Type.Integer(),
    first_name: Nullable(Type.String()),
    last_name: Nullable(Type.String()),
    email: Type.String({ format: 'email' }),
    mobile: Nullable(Type.String()),
    country_code: Nullable(Type.String()),
    admin: Type.Boolean(),
    created_at: DateTime,
    updated_at: DateTime,
  },
  { $id: 'User' },
);

export const SignupBody = Type.Object({
  user: Type.Object({
    first_name: Type.Optional(Nullable(Type.String({ maxLength: 100 }))),
    last_name: Type.Optional(Nullable(Type.String({ maxLength: 100 }))),
    email: Type.String({ maxLength: 254 }),
    mobile: Type.Optional(Nullable(Type.String({ maxLength: 32 }))),
    invite_token: Type.Optional(Nullable(Type.String({ maxLength: 128 }))),
    password: Type.String({ format: 'password' }),
    password_confirmation: Type.Optional(Nullable(Type.String({ format: 'password' }))),
  }),
});

export const LoginBody = Type.Object({
  user: Type.Object({
    email: Type.String({ maxLength: 254 }),
    password: Type.String({ format: 'password', maxLength: 256 }),
  }),
});

export const UserPatchBody = Type.Object({
  first_name: Type.Optional(Nullable(Type.String({ maxLength: 100 }))),
  last_name: Type.Optional(Nullable(Type.String({ maxLength: 100 }))),
  email: Type.Optional(Type.String({ maxLength: 254 })),
  mobile: Type.Optional(Nullable(Type.String({ maxLength: 32 }))),
});
