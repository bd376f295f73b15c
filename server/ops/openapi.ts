/** Shapes shared by the OpenAPI document and the routes. */
export const ERROR_BODY_SCHEMA = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: 'A stable code from docs/errors.md, e.g. TPD_SESSION_LIMIT' },
        message: { type: 'string' },
      },
    },
  },
} as const;
